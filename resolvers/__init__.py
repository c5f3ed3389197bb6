"""Business rules; framework-free: takes a Context, returns records, raises GatewayError."""
