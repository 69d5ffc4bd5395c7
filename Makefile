# IFllm Lab. Two commands matter: `make run` (development site) and `make test` (everything).
QUEUE ?= default
CONCURRENCY ?= 1

.PHONY: run test setup services worker migrate lint

run:  ## set up, migrate, load demo data and serve http://localhost:8000 (SQLite, no Redis)
	scripts/run.sh

test:  ## set up, start PostgreSQL + Redis if needed, ruff, full pytest suite
	scripts/test.sh

setup:  ## create/update .venv and node_modules only
	scripts/setup.sh

services:  ## start local PostgreSQL and Redis if they are not running
	scripts/services.sh

worker:  ## a Celery worker for one queue: make worker QUEUE=cpu (needs REDIS_URL, DATABASE_URL)
	.venv/bin/celery -A ifllm_site worker -Q $(QUEUE) --concurrency=$(CONCURRENCY) \
		-n $(QUEUE)@%h -l info

migrate:
	.venv/bin/python manage.py migrate

lint:
	.venv/bin/ruff check .
