# Image of the monitoring service (the monitoring pod): `docker build -t <registry>/agent-monitoring:<tag> .`
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
WORKDIR /app
COPY monitoring/requirements.txt /app/requirements.txt
RUN pip install --no-cache-dir -r /app/requirements.txt
COPY monitoring /app/monitoring
# Same non-root UID/GID as the pod's securityContext; the root filesystem is read-only there.
USER 10001:10001
EXPOSE 8000
ENTRYPOINT ["python", "-m", "monitoring"]
