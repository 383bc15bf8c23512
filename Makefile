# The two commands: `make demo` (set up, load Liangxi, serve the map) and `make test`.
.PHONY: demo test setup db load serve lint bench clean-db

HOST ?= 127.0.0.1
PORT ?= 5000

demo: setup db load serve

test:
	scripts/test.sh

setup:
	scripts/bootstrap.sh

db: setup
	.venv/bin/gridgov db start
	.venv/bin/gridgov db upgrade

load: db
	.venv/bin/gridgov boundaries load
	.venv/bin/gridgov catalogues load
	.venv/bin/gridgov supervision load
	.venv/bin/gridgov users demo
	.venv/bin/gridgov simulate --quiet

serve:
	.venv/bin/gridgov serve --host $(HOST) --port $(PORT)

lint: setup
	.venv/bin/ruff check .

bench: setup db
	.venv/bin/python bench/assign.py --sizes 1e5,1e6

clean-db:
	-.venv/bin/gridgov db stop
	rm -rf .gridgov
