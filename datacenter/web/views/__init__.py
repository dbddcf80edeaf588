"""The console's views, one module per concern; each lists its ``ROUTES``."""
