"""One module per `reclab` verb; each verb is a function with keyword arguments (argparse stays in `reclab.cli`)."""
