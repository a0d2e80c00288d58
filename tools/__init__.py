"""Build steps run by hand, never at serving time: they write files that are then committed."""
