"""Example applications written the Flask 0.1 way on `framework` (see `microblog`)."""
