"""The engine, the invoker and the model policies (Lambda's rules, held once)."""
