"""The Uspacy connector: a deal reaching the "fiscalise" stage becomes a receipt on a box."""
