"""Domain database: SQLAlchemy models, sessions, migrations and repository functions."""
