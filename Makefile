# Amanah: `make run` to see it, `make test` to test it. Both set themselves up.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell cat requirements/base.txt requirements/dev.txt | sha1sum | cut -c1-12)

.PHONY: setup run serve soak test lint format security bench bench-scale worker beat migrate clean chromium softhsm gettext

$(STAMP): requirements/base.txt requirements/dev.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements/dev.txt
	@command -v chromium >/dev/null || $(MAKE) --no-print-directory chromium
	@command -v softhsm2-util >/dev/null || $(MAKE) --no-print-directory softhsm
	@rm -f $(VENV)/.installed-*
	@touch $@

# Browser tests drive Debian's Chromium (Playwright's own browser download is not used).
chromium:
	@if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		(apt-get install -y -qq chromium >/dev/null 2>&1 || \
		 (apt-get update -qq && apt-get install -y -qq chromium >/dev/null)) \
		&& echo "Installed Debian's chromium for the browser tests."; \
	else echo "No chromium: browser tests will be skipped (apt-get install chromium)."; fi

# The HSM tests and `AMANAH_KEY_PROVIDER=pkcs11` on a laptop use Debian's SoftHSM2.
softhsm:
	@if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		(apt-get install -y -qq softhsm2 >/dev/null 2>&1 || \
		 (apt-get update -qq && apt-get install -y -qq softhsm2 >/dev/null)) \
		&& echo "Installed Debian's softhsm2 for the HSM tests."; \
	else echo "No softhsm2: HSM tests will be skipped (apt-get install softhsm2)."; fi

# The customers' languages (README, "Languages"): each locale/<lang>/LC_MESSAGES/django.po
# compiled to its .mo (git-ignored) when the .po is newer. msgfmt is GNU gettext's.
MESSAGES := $(patsubst %.po,%.mo,$(wildcard locale/*/LC_MESSAGES/django.po))
%.mo: %.po | $(STAMP)
	@command -v msgfmt >/dev/null || $(MAKE) --no-print-directory gettext
	$(PY) manage.py compilemessages --ignore=$(VENV) -v0

gettext:
	@if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		(apt-get install -y -qq gettext >/dev/null 2>&1 || \
		 (apt-get update -qq && apt-get install -y -qq gettext >/dev/null)) \
		&& echo "Installed Debian's gettext to compile the translations."; \
	else echo "No msgfmt: install gettext (apt-get install gettext) to compile the translations." >&2; exit 1; fi

setup: $(STAMP) $(MESSAGES)

migrate: setup
	$(PY) manage.py migrate --noinput

# `make run PORT=8001` serves on another port; links in emails and seed_demo's output
# follow it (AMANAH_PUBLIC_URL, unless already set in the environment).
RUN_PORT := $(or $(PORT),8000)
RUN_URL := $(or $(AMANAH_PUBLIC_URL),http://127.0.0.1:$(RUN_PORT))
run: migrate
	AMANAH_PUBLIC_URL=$(RUN_URL) $(PY) manage.py seed_demo --min-customers 300
	@echo "Amanah is at $(RUN_URL) (Ctrl-C to stop)."
	AMANAH_PUBLIC_URL=$(RUN_URL) $(PY) manage.py runserver 127.0.0.1:$(RUN_PORT)

# The production-shaped stack (README, "make serve"): gunicorn, Celery workers and beat
# from the Procfile (honcho), DJANGO_DEBUG=0. Settings come from the environment or
# `.env` (honcho reads it; `.env.example` lists them); Ctrl-C stops every process.
SERVE_NEEDS := DJANGO_SECRET_KEY AMANAH_MASTER_KEYS AMANAH_BLIND_INDEX_KEY \
	DJANGO_ALLOWED_HOSTS DATABASE_URL CACHE_URL CELERY_BROKER_URL AMANAH_RELAY_SECRET \
	AMANAH_PUBLIC_URL AMANAH_ERASURE_JOURNAL AMANAH_SIGNING_KEY AMANAH_AUDIT_CHECKPOINT_DIR
SERVE_PORT := $(or $(PORT),8000)
HONCHO := DJANGO_DEBUG=0 PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(VENV)/bin/honcho
serve: setup
	@$(HONCHO) run sh -c 'missing=""; for v in $(SERVE_NEEDS); do \
		[ -n "$$(printenv $$v)" ] || { { [ $$v = AMANAH_MASTER_KEYS ] || [ $$v = AMANAH_SIGNING_KEY ]; } && [ "$$AMANAH_KEY_PROVIDER" = pkcs11 ]; } \
			|| missing="$$missing $$v"; done; \
		[ -z "$$missing" ] || { echo "make serve needs:$$missing (set them in the environment or .env; see .env.example)" >&2; exit 1; }; \
		[ "$$DJANGO_DEBUG" = 0 ] || { echo "make serve runs production settings: remove DJANGO_DEBUG from .env" >&2; exit 1; }'
	@$(HONCHO) run python manage.py migrate --noinput
	@$(HONCHO) run python manage.py collectstatic --noinput -v0
	@echo "Amanah (production settings) on 127.0.0.1:$(SERVE_PORT); HTTPS is expected from a proxy:"
	@echo "  curl -H 'X-Forwarded-Proto: https' http://127.0.0.1:$(SERVE_PORT)/status/   (Ctrl-C stops all)"
	@$(HONCHO) start -p $(SERVE_PORT)

test: setup
	$(VENV)/bin/pytest $(PYTEST_ARGS)

# ruff; the allowed imports between apps (import-linter, docs/ARCHITECTURE.md); types
# (mypy with django-stubs over apps/).
lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports
	$(VENV)/bin/mypy apps

format: setup
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

# The long security run: bandit, the security suite at full size (Schemathesis over
# every operation as every role, 5,000+ cases with the coverage phase; Hypothesis at
# 500 examples per property), the deploy checklist, then pip-audit, which needs PyPI's
# vulnerability data (see SECURITY.md: where it cannot reach it, every package is
# listed as "could not be audited", which is not a pass).
SECURITY_EXAMPLES ?= 40
security: setup
	$(VENV)/bin/bandit -c pyproject.toml -r . -q
	AMANAH_SCHEMATHESIS_EXAMPLES=$(SECURITY_EXAMPLES) AMANAH_SCHEMATHESIS_COVERAGE=1 \
	AMANAH_SCHEMATHESIS_STATEFUL=20 AMANAH_SCHEMATHESIS_SEED=random \
	AMANAH_HYPOTHESIS_PROFILE=security AMANAH_REQUIRE_POSTGRES=1 \
		$(VENV)/bin/pytest tests/security \
		tests/config/test_settings.py::test_production_settings_pass_the_deploy_checklist \
		-p no:cacheprovider $(PYTEST_ARGS)
	$(VENV)/bin/pip-audit -r requirements/dev.txt --progress-spinner off

# soak.py and scale.py are left out: they run for minutes or hours (`make soak`,
# `make bench-scale`).
bench: setup
	@for b in bench/[!_]*.py; do [ -e "$$b" ] || continue; \
		case "$$b" in bench/soak.py|bench/scale.py) continue;; esac; \
		echo "== $$b"; $(PY) $$b || exit 1; done

# One node at 100,000 and at BENCH_CUSTOMERS (10,000,000) customers, one table of
# ratios (bench/scale.py; docs/SCALING.md). Hours and tens of GB of disk at 10M.
bench-scale: setup
	$(PY) bench/scale.py

# The stack under a mixed load with injected faults, on a database and a Redis of its
# own: AMANAH_SOAK_SECONDS (300) with AMANAH_SOAK_USERS (50), then the invariants
# (README, "make soak"). Exit 0 only when every invariant holds.
soak: setup
	$(PY) bench/soak.py

worker: setup
	$(VENV)/bin/celery -A config worker --loglevel=INFO

beat: setup
	$(VENV)/bin/celery -A config beat --loglevel=INFO

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache staticfiles
