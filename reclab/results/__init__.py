"""Results: the run record (one typed, versioned structure) and the results file that holds them."""
