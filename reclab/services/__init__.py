"""The database and cache a recommender runs against (embedded or by URI), and the delay proxy between them."""
