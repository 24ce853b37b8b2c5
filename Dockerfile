# The worker image: hitl and the agent modules it serves.
FROM python:3.11-slim
WORKDIR /app
COPY . /app
RUN pip install --no-cache-dir -e ".[dev]"
CMD ["python", "worker.py", "--agents", "examples.quickstart", "--agents", "examples.team_trading"]
