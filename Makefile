# `make suite` runs every notebook on the embedded data; `make test` runs the tests.
# Both create .venv and generate the data on first use (see tools/nb.sh for options).
.PHONY: setup libero suite test data bench lint clean-notebooks results latent-model

setup:
	bash tools/nb.sh setup

suite:
	bash tools/nb.sh suite

test:
	bash tools/nb.sh test

libero:  # the LIBERO / LIBERO-PRO and policy-server (vla-eval) extras (make test installs them too)
	bash tools/nb.sh libero

data: setup
	.venv/bin/nblib data ensure

results: data  # closed-loop example results of notebook 05 (its time: README, Quickstart)
	bash tools/make_results.sh

bench: data
	.venv/bin/nblib bench loader

lint:
	.venv/bin/ruff check nblib tests && .venv/bin/ruff format --check nblib tests

clean-notebooks:
	.venv/bin/nblib clean --refresh notebooks/*.ipynb

# The latent-action model notebook 04 analyses by default (data_manifests/models/): the
# notebook's recipe (600 steps, seed 0) trained on the embedded demos, ~3 min.
latent-model: data
	.venv/bin/nblib run notebooks/04_token_compass.ipynb -p latent_model train --out runs/latent_model
	mkdir -p data_manifests/models
	cp runs/latent_model/latent_action_model.pt data_manifests/models/latent_actions_metaworld_default.pt
