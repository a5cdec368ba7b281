"""A client of the exported models served by TensorFlow Serving, over REST or gRPC.

    python export/client.py --server=http://localhost:8501 --model=inpaint --input image=digit.png
        --input mask=mask.png --output=out/
    python export/client.py --server=grpc://localhost:8500 --model=pose3d --input keypoints=kp.npy
        --input image_size=size.npy

Inputs are .npy files or .png/.jpg images (uint8 [1, H, W, C], grayscale as C = 1). The client reads
the model's signatures from the server first and refuses inputs of another name, dtype or shape
before sending them. Standalone: it needs numpy, requests, grpcio, tensorflow(-serving-api) and
Pillow, not aign_tf.
"""
from __future__ import annotations

import argparse
import os
import sys

import grpc
import numpy as np
import requests
import tensorflow as tf
from google.protobuf import json_format
from PIL import Image
from tensorflow_serving.apis import get_model_metadata_pb2, predict_pb2, prediction_service_pb2_grpc

GRPC_OPTIONS = [("grpc.max_receive_message_length", -1)]  # outputs of large images pass gRPC's 4 MB default


def one_line(message: str) -> str:
    """A server's (often multi-line) error message on one line."""
    return " ".join(message.split())


def parse_signatures(signature_defs: get_model_metadata_pb2.SignatureDefMap) -> dict:
    """{signature: {"inputs"/"outputs": {name: (dtype, shape)}}}, dtype as "uint8", shape a list with
    -1 for any size (None for an unknown rank); TensorFlow's internal `__saved_model_init_op` is left out."""
    def specs(tensors):
        return {name: (tf.as_dtype(info.dtype).name,
                       None if info.tensor_shape.unknown_rank else [d.size for d in info.tensor_shape.dim])
                for name, info in sorted(tensors.items())}

    return {name: {"inputs": specs(s.inputs), "outputs": specs(s.outputs)}
            for name, s in sorted(signature_defs.signature_def.items()) if not name.startswith("__")}


def check_inputs(metadata: dict, signature: str, inputs: dict[str, np.ndarray]) -> None:
    """Raises ValueError unless `inputs` have exactly the names, dtypes and shapes of the signature."""
    if signature not in metadata:
        raise ValueError(f"unknown signature {signature!r}; the model has {sorted(metadata)}")
    expected = metadata[signature]["inputs"]
    if sorted(inputs) != sorted(expected):
        raise ValueError(f"signature {signature!r} takes inputs {sorted(expected)}, got {sorted(inputs)}")
    for name, (dtype, shape) in expected.items():
        value = np.asarray(inputs[name])
        fits = shape is None or (value.ndim == len(shape) and all(e in (-1, v) for e, v in zip(shape, value.shape)))
        if value.dtype.name != dtype or not fits:
            raise ValueError(f"input {name!r} is {value.dtype.name} {list(value.shape)}; "
                             f"signature {signature!r} expects {dtype} {shape}")


def rest_request(method: str, url: str, timeout: float, body: dict | None = None) -> dict:
    """The JSON answer of TF Serving's REST API; RuntimeError with the server's message on an error."""
    response = requests.request(method, url, json=body, timeout=timeout)
    if not response.ok:
        try:
            message = response.json()["error"]
        except (ValueError, KeyError, TypeError):
            message = response.text
        raise RuntimeError(f"{method} {url} failed with HTTP {response.status_code}: {one_line(message)}")
    return response.json()


def rest_model_url(url: str, model: str, version: int | None) -> str:
    return f"{url.rstrip('/')}/v1/models/{model}" + ("" if version is None else f"/versions/{version}")


def rest_metadata(url: str, model: str, version: int | None = None, timeout: float = 30) -> dict:
    """The model's signatures (`parse_signatures`) from GET .../metadata."""
    answer = rest_request("GET", rest_model_url(url, model, version) + "/metadata", timeout)
    signature_defs = json_format.ParseDict(answer["metadata"]["signature_def"],
                                           get_model_metadata_pb2.SignatureDefMap(), ignore_unknown_fields=True)
    return parse_signatures(signature_defs)


def rest_predict(url: str, model: str, inputs: dict[str, np.ndarray], signature: str = "serving_default",
                 version: int | None = None, timeout: float = 30) -> dict[str, np.ndarray]:
    """Runs a signature through POST ...:predict (columnar "inputs"); outputs in the signature's dtypes."""
    metadata = rest_metadata(url, model, version, timeout)
    check_inputs(metadata, signature, inputs)
    body = {"signature_name": signature, "inputs": {name: np.asarray(value).tolist() for name, value in inputs.items()}}
    outputs = rest_request("POST", rest_model_url(url, model, version) + ":predict", timeout, body)["outputs"]
    specs = metadata[signature]["outputs"]
    if not isinstance(outputs, dict):  # TF Serving leaves out the name of a single output
        outputs = {next(iter(specs)): outputs}
    return {name: np.asarray(value, dtype=tf.as_dtype(specs[name][0]).as_numpy_dtype)
            for name, value in outputs.items()}


def grpc_call(target: str, method: str, request, timeout: float):
    """Calls one PredictionService method; RuntimeError with the server's message on an error."""
    with grpc.insecure_channel(target, options=GRPC_OPTIONS) as channel:
        call = getattr(prediction_service_pb2_grpc.PredictionServiceStub(channel), method)
        try:
            return call(request, timeout=timeout)
        except grpc.RpcError as error:
            message = one_line(error.details() or "")
            raise RuntimeError(f"{method} on {target} failed with {error.code().name}: {message}") from None


def set_model_spec(request, model: str, version: int | None, signature: str = "") -> None:
    """Names the model (and its version, the signature) in request.model_spec."""
    request.model_spec.name = model
    request.model_spec.signature_name = signature
    if version is not None:
        request.model_spec.version.value = version


def grpc_metadata(target: str, model: str, version: int | None = None, timeout: float = 30) -> dict:
    """The model's signatures (`parse_signatures`) from GetModelMetadata."""
    request = get_model_metadata_pb2.GetModelMetadataRequest(metadata_field=["signature_def"])
    set_model_spec(request, model, version)
    signature_defs = get_model_metadata_pb2.SignatureDefMap()
    grpc_call(target, "GetModelMetadata", request, timeout).metadata["signature_def"].Unpack(signature_defs)
    return parse_signatures(signature_defs)


def grpc_predict(target: str, model: str, inputs: dict[str, np.ndarray], signature: str = "serving_default",
                 version: int | None = None, timeout: float = 30) -> dict[str, np.ndarray]:
    """Runs a signature through Predict."""
    check_inputs(grpc_metadata(target, model, version, timeout), signature, inputs)
    request = predict_pb2.PredictRequest()
    set_model_spec(request, model, version, signature)
    for name, value in inputs.items():
        request.inputs[name].CopyFrom(tf.make_tensor_proto(value))
    response = grpc_call(target, "Predict", request, timeout)
    return {name: tf.make_ndarray(proto) for name, proto in response.outputs.items()}


def read_input(path: str) -> np.ndarray:
    """A .npy file as it is, or an image as uint8 [1, H, W, C] (grayscale: C = 1)."""
    extension = os.path.splitext(path)[1].lower()
    if extension == ".npy":
        return np.load(path)
    if extension in (".png", ".jpg", ".jpeg"):
        with Image.open(path) as image:
            pixels = np.asarray(image.convert("L" if image.mode in ("1", "L", "LA", "I", "I;16") else "RGB"))
        return (pixels[..., np.newaxis] if pixels.ndim == 2 else pixels)[np.newaxis]
    raise ValueError(f"{path}: inputs are .npy files or .png/.jpg images")


def write_outputs(outputs: dict[str, np.ndarray], directory: str) -> None:
    """NAME.npy for every output, and NAME.png of the first example of uint8 image batches [N, H, W, C]."""
    os.makedirs(directory, exist_ok=True)
    for name, value in outputs.items():
        np.save(os.path.join(directory, f"{name}.npy"), value)
        if value.dtype == np.uint8 and value.ndim == 4:
            image = value[0, ..., 0] if value.shape[-1] == 1 else value[0]
            Image.fromarray(image).save(os.path.join(directory, f"{name}.png"))


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--server", required=True, help="http://HOST:8501 (REST) or grpc://HOST:8500")
    parser.add_argument("--model", required=True, help="the model name in the server's config, e.g. inpaint")
    parser.add_argument("--version", type=int, help="a model version (default: the latest)")
    parser.add_argument("--signature", default="serving_default", help="default: serving_default")
    parser.add_argument("--input", action="append", default=[], metavar="NAME=PATH", help="one per signature input")
    parser.add_argument("--output", help="directory for NAME.npy (and NAME.png) of each output")
    return parser.parse_args(argv)


def main(argv: list[str]) -> None:
    args = parse_args(argv)
    try:
        inputs = {}
        for item in args.input:
            name, separator, path = item.partition("=")
            if not separator:
                raise ValueError(f"--input {item}: expected NAME=PATH")
            inputs[name] = read_input(path)
        if args.server.startswith("grpc://"):
            outputs = grpc_predict(args.server[len("grpc://"):], args.model, inputs, args.signature, args.version)
        elif args.server.startswith(("http://", "https://")):
            outputs = rest_predict(args.server, args.model, inputs, args.signature, args.version)
        else:
            raise ValueError(f"--server={args.server}: expected http://HOST:PORT or grpc://HOST:PORT")
        for name, value in outputs.items():
            print(f"{name}: {value.dtype.name} {list(value.shape)}")
        if args.output:
            write_outputs(outputs, args.output)
    except (ValueError, RuntimeError, OSError) as error:  # OSError: files, and requests' connection errors
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main(sys.argv[1:])
