"""The system under test: a framework-free recommender core and one thin adapter per framework."""
