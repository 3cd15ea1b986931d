"""Reports: evaluation results as text, figures and one self-contained HTML page."""
