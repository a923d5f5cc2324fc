"""Analysis: statistics over run records, summaries per variant, flags and their thresholds,
comparisons, and the talk's claims as data. Everything the report shows is computed here."""
