"""The HTTP edge: FastAPI routers and the pages they serve."""
