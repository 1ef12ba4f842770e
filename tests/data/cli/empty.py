"""No functions at all."""

X = 1
