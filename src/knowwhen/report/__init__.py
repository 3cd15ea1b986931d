"""Reports: evaluation results as text (and, later, figures and HTML)."""
