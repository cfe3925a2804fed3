# The one interface to the project: CI calls these targets and nothing else.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
PIP_VERSION := 25.3
CONFIG ?= config/pipeline.yaml

.PHONY: iam-mutations account-setup help venv container-venv run test lint unit integration container-test bench-container bench-quality bench-serve bench-definition bench-lambda definition build image deploy start-run ingest destroy up down e2e clean

help: ## list the targets
	@grep -hE '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-18s %s\n", $$1, $$2}'

# Every environment is made with $(PYTHON), which must be Python 3.11: MXNet 1.9.1 with numpy<1.24 has no wheels for
# a later one. $(call new-venv,DIR,ABOUT) makes DIR unless it exists, first checking $(PYTHON) and saying what it
# makes and how long that takes (ABOUT), since the pip installs that follow are quiet.
define new-venv
	@if test -x $(1)/bin/python; then echo "updating $(1): its requirements changed"; else \
		command -v $(PYTHON) >/dev/null || { echo "$(PYTHON) not found: install Python 3.11 or pass PYTHON=/path/to/python3.11" >&2; exit 1; }; \
		found=$$($(PYTHON) -c 'import sys; print(*sys.version_info[:2], sep=".")'); \
		test "$$found" = 3.11 || { echo "$(PYTHON) is Python $${found:-of an unknown version}, not 3.11 (MXNet 1.9.1 with numpy<1.24 needs 3.11): install Python 3.11 or pass PYTHON=/path/to/python3.11" >&2; exit 1; }; \
		echo "creating $(1) ($(2))"; $(PYTHON) -m venv $(1); fi
endef
VENV_ABOUT := control plane, tests, linters from the pinned requirements: about 2 minutes and 1.5 GB the first time
CONTAINER_VENV_ABOUT := MXNet 1.9.1, GluonCV, OpenCV: about 2 minutes and 1.3 GB the first time
TOOLS_ABOUT = $* with its own pinned boto3: about 1 minute and 300 MB the first time

# .venv: control plane, pipeline_def, tests and linters, from the pinned requirements; then the command line,
# scratch-detector (pyproject's [project.scripts]), editable and on those pins
$(VENV)/.installed: requirements-dev.txt layers/common/requirements.txt pyproject.toml
	$(call new-venv,$(VENV),$(VENV_ABOUT))
	$(PY) -m pip install --quiet --disable-pip-version-check pip==$(PIP_VERSION)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps -e .
	@touch $@

venv: $(VENV)/.installed ## create .venv (control plane, tests, linters, the scratch-detector command line) from the pinned requirements

# container/.venv: what the training image holds (MXNet + GluonCV), from the same requirements files
CONTAINER_VENV := container/.venv
$(CONTAINER_VENV)/.installed: container/requirements.txt container/requirements-nodeps.txt container/requirements-test.txt
	$(call new-venv,$(CONTAINER_VENV),$(CONTAINER_VENV_ABOUT))
	$(CONTAINER_VENV)/bin/python -m pip install --quiet --disable-pip-version-check pip==$(PIP_VERSION)
	$(CONTAINER_VENV)/bin/python -m pip install --quiet --disable-pip-version-check -r container/requirements.txt
	$(CONTAINER_VENV)/bin/python -m pip install --quiet --disable-pip-version-check --no-deps -r container/requirements-nodeps.txt
	$(CONTAINER_VENV)/bin/python -m pip install --quiet --disable-pip-version-check -r container/requirements-test.txt
	@touch $@

container-venv: $(CONTAINER_VENV)/.installed ## create container/.venv (MXNet 1.9.1, GluonCV)

# .tools/<tool>: linters that pin their own boto3 (SAM CLI, checkov), one environment each
TOOLS := .tools
$(TOOLS)/%/.installed: tools/requirements-%.txt
	$(call new-venv,$(TOOLS)/$*,$(TOOLS_ABOUT))
	$(TOOLS)/$*/bin/python -m pip install --quiet --disable-pip-version-check pip==$(PIP_VERSION)
	$(TOOLS)/$*/bin/python -m pip install --quiet --disable-pip-version-check -r $<
	@touch $@

run: $(VENV)/.installed $(CONTAINER_VENV)/.installed $(TOOLS)/sam/.installed ## the main job, offline: train, register and approve a model on the local stack [DATASET=dir SEED=n]
	$(PY) -m local run $(if $(DATASET),--dataset $(DATASET)) $(if $(SEED),--seed $(SEED))

up: $(VENV)/.installed $(CONTAINER_VENV)/.installed $(TOOLS)/sam/.installed ## start the local stack in the background (API on 127.0.0.1:8787)
	$(PY) -m local up

down: $(VENV)/.installed ## stop the local stack, leaving no process behind (its state is kept in work/local)
	$(PY) -m local down

definition: $(VENV)/.installed ## print the pipeline definition JSON built from CONFIG
	@$(PY) -m pipeline_def build --config $(CONFIG)

test: lint unit integration container-test e2e ## lint, then every test tier

unit: $(VENV)/.installed $(TOOLS)/sam/.installed ## tests/unit (no network; the SAM tool environment translates template.yaml)
	$(PY) -m pytest tests/unit

# the local stack's IAM reads each role as CloudFormation receives it: the SAM transform runs in .tools/sam
integration: $(VENV)/.installed $(CONTAINER_VENV)/.installed $(TOOLS)/sam/.installed ## tests/integration (handlers and CLIs against moto, each function as its role)
	$(PY) -m pytest tests/integration

e2e: $(VENV)/.installed $(CONTAINER_VENV)/.installed $(TOOLS)/sam/.installed ## the local stack over HTTP, tiny settings (a few seconds per step)
	$(PY) -m pytest tests/e2e

container-test: $(CONTAINER_VENV)/.installed ## the container's entry points end to end, in container/.venv
	cd container && .venv/bin/python -m pytest

lint: $(VENV)/.installed $(CONTAINER_VENV)/.installed $(TOOLS)/sam/.installed $(TOOLS)/checkov/.installed ## ruff, the complexity gate, mypy (both environments), hadolint, cfn-lint (+ serverless rules), sam validate, checkov, actionlint, zizmor
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(PY) tools/complexity.py
	$(VENV)/bin/mypy .
	cd container && .venv/bin/mypy
	$(VENV)/bin/hadolint container/Dockerfile
	$(TOOLS)/sam/bin/cfn-lint template.yaml rollout/github-oidc.yaml --append-rules cfn_lint_serverless.rules
	SAM_CLI_TELEMETRY=0 $(TOOLS)/sam/bin/sam validate --lint --template template.yaml
	$(TOOLS)/checkov/bin/checkov --file template.yaml --file rollout/github-oidc.yaml --framework cloudformation --quiet --compact --skip-download
	$(VENV)/bin/actionlint
	$(VENV)/bin/zizmor --offline --persona pedantic .github/workflows

iam-mutations: $(VENV)/.installed $(CONTAINER_VENV)/.installed $(TOOLS)/sam/.installed ## every role statement is needed and every need granted: remove each one, a test must fail naming it (~25 min; ACTIONS=1 each action too)
	$(PY) tools/iam_mutations.py $(if $(filter 1,$(ACTIONS)),--actions) $(if $(REUSE),--reuse)

bench-container: $(VENV)/.installed $(CONTAINER_VENV)/.installed ## preprocessing and training speed, peak memory, vs the sample's way
	PYTHONPATH=. $(CONTAINER_VENV)/bin/python -m bench.container

bench-quality: $(CONTAINER_VENV)/.installed ## train SEEDS seeds (3) on DATASET vs BASELINE (a57626d|none): mean and spread, ARGS= more flags
	PYTHONPATH=. $(CONTAINER_VENV)/bin/python -m bench.container.quality --dataset $(or $(DATASET),../shared/datasets/metal-tags) $(if $(SEEDS),--seeds $(SEEDS)) $(if $(BASELINE),--baseline $(BASELINE)) $(ARGS)

bench-serve: $(CONTAINER_VENV)/.installed ## serve's images/s and latency at concurrency 1 and 4 vs the model's bare forward loop
	PYTHONPATH=. $(CONTAINER_VENV)/bin/python -m bench.container.serve $(if $(REQUESTS),--requests $(REQUESTS))

bench-definition: $(VENV)/.installed ## definition build + validation time vs the SageMaker SDK's definition()
	$(PY) -m bench.definition

bench-lambda: $(VENV)/.installed $(TOOLS)/sam/.installed ## each function as sam builds it: cold import time and size, with its layer
	$(PY) -m bench.lambda_functions

# Deployment (README, "Deploy"): ENV is dev (samconfig.toml's default section) or prod. `sam build` needs no
# Docker (the layer builds Linux wheels with pip); the training image does.
ENV ?= dev
ROLLOUT := $(PY) -m rollout --env $(ENV)
SAM := --sam $(TOOLS)/sam/bin/sam
build: $(VENV)/.installed $(TOOLS)/sam/.installed ## sam build: the functions and the layer into .aws-sam/ [ENV=dev|prod]
	$(ROLLOUT) build $(SAM)

image: $(VENV)/.installed ## docker build container/, tag it with the git commit, push it to ENV's ECR repository [GPU=1]
	$(ROLLOUT) image $(if $(filter 1,$(GPU)),--gpu)

deploy: $(VENV)/.installed $(TOOLS)/sam/.installed ## build, push the commit's image, sam deploy ENV (dev|prod); prints the API URL [CONFIRM=0 CFN_ROLE=arn GPU=1 QUOTAS=ignore]
	$(ROLLOUT) deploy $(SAM) $(if $(filter 0,$(CONFIRM)),--no-confirm) $(if $(filter ignore,$(QUOTAS)),--ignore-quotas) $(if $(filter 1,$(GPU)),--gpu) $(if $(PROMOTE_FROM),--promote-from $(PROMOTE_FROM)) \
		$(if $(CFN_ROLE),--role-arn $(CFN_ROLE))

account-setup: $(VENV)/.installed ## once per AWS account and region: the CloudWatch Logs role API Gateway needs (make deploy says when); lists the SageMaker quotas the config needs
	$(ROLLOUT) account-setup

start-run: $(VENV)/.installed ## start a training run on ENV through its API (IAM-signed) and print its links
	$(ROLLOUT) start-run $(if $(IDEMPOTENCY_KEY),--idempotency-key $(IDEMPOTENCY_KEY))

ingest: $(VENV)/.installed $(CONTAINER_VENV)/.installed ## put DATASET (a label export, file or folder, + images) into ENV's bucket and feature group [FORMAT=csv|coco|voc|yolo|groundtruth]
	$(ROLLOUT) ingest $(if $(DATASET),--dataset $(DATASET)) $(if $(FORMAT),--format $(FORMAT))

destroy: $(VENV)/.installed ## delete ENV's stack and all it leaves (bucket, images, models, logs); asks unless FORCE=1
	$(ROLLOUT) destroy $(if $(filter 1,$(FORCE)),--force)

clean: ## remove caches (keeps the environments)
	rm -rf .pytest_cache .mypy_cache .ruff_cache .aws-sam
	find . -name __pycache__ -not -path './.venv/*' -prune -exec rm -rf {} +
