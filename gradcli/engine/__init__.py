"""gradcli's reverse-mode automatic differentiation engine over numpy."""
