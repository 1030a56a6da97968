"""The DuckDB model: SQL files (`models/staging`, `models/core`) and the runner that builds them."""
