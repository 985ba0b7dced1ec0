"""What users would pick: FastAPI with the same no-op route."""

from fastapi import FastAPI

app = FastAPI()


@app.get("/noop")
async def noop() -> dict[str, bool]:
    return {"ok": True}
