"""The distributed tracer: spans, traces, W3C trace context, analysis and OTLP ingestion."""
