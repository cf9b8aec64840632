# Images for the production topology (see docker-compose.yml):
#   docker build --target rasa -t shop-assistant-rasa .
#   docker build --target app  -t shop-assistant-app  .
# The Rasa server needs Python 3.10 (Rasa Open Source 3.6); the app runs on Python 3.11.

FROM python:3.10-slim AS rasa
WORKDIR /srv
ENV TF_CPP_MIN_LOG_LEVEL=3 RASA_TELEMETRY_ENABLED=false PYTHONUNBUFFERED=1
COPY requirements-rasa.txt .
RUN pip install --no-cache-dir -r requirements-rasa.txt
COPY config.yml domain.yml ./
COPY nlu_data/ nlu_data/
RUN rasa train --config config.yml --domain domain.yml --data nlu_data --out models
EXPOSE 5005
# endpoints.yml (action endpoint, tracker store, lock store) is mounted at /srv/runtime
CMD ["rasa", "run", "--model", "models", "--endpoints", "runtime/endpoints.yml", \
     "--credentials", "runtime/credentials.yml", "--interface", "0.0.0.0", "--port", "5005", \
     "--enable-api"]

FROM python:3.11-slim AS app
WORKDIR /srv
ENV HF_HUB_OFFLINE=1 PYTHONUNBUFFERED=1 APP_HOST=0.0.0.0
COPY pyproject.toml README.md ./
COPY bot/ bot/
COPY actions/ actions/
COPY vision/ vision/
COPY recsys/ recsys/
COPY knowledge/ knowledge/
RUN pip install --no-cache-dir .
EXPOSE 8080
CMD ["bot", "serve"]
