"""The inference server our users write today, as the seed articles teach it:
FastAPI with an UploadFile, the work in a ThreadPoolExecutor through
run_in_executor, Pillow to decode and resize, onnxruntime run per image.
It loads the same .onnx bytes imgpush serve runs, with the same preprocessing
(224x224, ImageNet mean and std, NCHW float32). Prints its port once the
model is loaded. Usage: python fastapi_peer.py MODEL.onnx
"""
import asyncio
import io
import socket
import sys
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager

import numpy as np
import onnxruntime as ort
import uvicorn
from fastapi import FastAPI, File, HTTPException, UploadFile
from PIL import Image

SIZE = 224
MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)

executor = ThreadPoolExecutor(max_workers=4)
model = {}


def predict(data, top_k):
    image = Image.open(io.BytesIO(data)).convert('RGB').resize((SIZE, SIZE))
    pixels = (np.asarray(image, dtype=np.float32) / 255 - MEAN) / STD
    batch = pixels.transpose(2, 0, 1)[np.newaxis]
    session = model['session']
    scores = session.run(None, {session.get_inputs()[0].name: batch})[0][0]
    best = np.argsort(-scores)[:top_k]
    return [{'label': f'class-{index}', 'score': round(float(scores[index]), 6)} for index in best]


@asynccontextmanager
async def lifespan(app):
    model['session'] = ort.InferenceSession(sys.argv[1], providers=['CPUExecutionProvider'])
    print(app.state.port, flush=True)
    yield
    executor.shutdown()


app = FastAPI(lifespan=lifespan)


@app.post('/predict')
async def api_predict(file: UploadFile = File(...), top_k: int = 5):
    if not (file.content_type or '').startswith('image/'):
        raise HTTPException(status_code=400, detail='only image files')
    data = await file.read()
    loop = asyncio.get_event_loop()
    try:
        results = await loop.run_in_executor(executor, predict, data, top_k)
    except Exception as error:
        raise HTTPException(status_code=500, detail=f'inference failed: {error}')
    return {'filename': file.filename, 'results': results}


def main():
    listener = socket.socket()
    listener.bind(('127.0.0.1', 0))
    app.state.port = listener.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level='warning', access_log=False))
    asyncio.run(server.serve(sockets=[listener]))


main()
