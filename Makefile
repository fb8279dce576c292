# The README's commands. Each sets up .venv (creating or reusing it) before it runs.
.PHONY: demo demo-headless test setup build

demo:            ## JupyterLab on notebooks/quickstart.ipynb (prints the URL)
	bash scripts/demo.sh

demo-headless:   ## execute notebooks/quickstart.ipynb without a browser; fails on any error
	bash scripts/demo.sh --headless

test:            ## Python, JS, notebook and browser tests, with the time each part took
	bash scripts/test.sh

setup:           ## only the setup: .venv, npm ci, chromium, JS build
	bash scripts/setup.sh

build:           ## only the JS build into tlwidgets/static/
	npm run build
