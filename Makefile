# The two commands a new user needs: `make demo` and `make test`. Both set up .venv first.
.PHONY: setup demo test clean

setup:
	@bash scripts/setup.sh

demo: setup
	.venv/bin/knowwhen demo --out demo-output

test: setup
	.venv/bin/python -m pytest -q

clean:
	rm -rf .venv demo-output
