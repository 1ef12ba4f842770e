def f(x):
    y = x * 2
    raise ValueError(f"boom from f (y has shape {y.shape})")
