"""Test doubles of TF Serving for one exported SavedModel version: a gRPC PredictionService (Predict,
GetModelMetadata) and the REST API (POST :predict in the columnar format, GET /metadata).

They run the SavedModel's signatures in this process (`tf.saved_model.load`) and describe them from
its real MetaGraphDef, as TF Serving does, but they are not TF Serving: only what export/client.py
uses is implemented, and error messages are TensorFlow's own or the doubles'.
"""
from __future__ import annotations

import contextlib
import functools
import json
import os
import re
import threading
from concurrent import futures
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import grpc
import numpy as np
import tensorflow as tf
from google.protobuf import json_format
from tensorflow.core.protobuf import saved_model_pb2
from tensorflow_serving.apis import get_model_metadata_pb2, predict_pb2, prediction_service_pb2_grpc

HTTP_STATUS = {"NOT_FOUND": 404, "INVALID_ARGUMENT": 400}


class ServingError(Exception):
    """A refused request: `code` is a gRPC status code name."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code, self.message = code, message


class Servable:
    """One SavedModel version served as `name`; counts the predictions it runs."""

    def __init__(self, version_dir: str, name: str):
        self.name, self.version = name, int(os.path.basename(version_dir))
        self.loaded = tf.saved_model.load(version_dir)
        saved = saved_model_pb2.SavedModel()
        with open(os.path.join(version_dir, "saved_model.pb"), "rb") as f:
            saved.ParseFromString(f.read())
        self.signature_defs = get_model_metadata_pb2.SignatureDefMap(signature_def=saved.meta_graphs[0].signature_def)
        self.predictions = 0

    def check_model(self, name: str, version: int | None) -> None:
        """Raises NOT_FOUND unless (name, version) asks for this servable (version None: the latest)."""
        if name != self.name or version not in (None, self.version):
            request = f"Latest({name})" if version is None else f"Specific({name}, {version})"
            raise ServingError("NOT_FOUND", f"Servable not found for request: {request}")

    def signature(self, name: str):
        """The signature's concrete function; INVALID_ARGUMENT for an unknown one."""
        if name not in self.loaded.signatures:
            raise ServingError("INVALID_ARGUMENT", f'Serving signature key "{name}" not found.')
        return self.loaded.signatures[name]

    def predict(self, signature: str, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Runs a signature; INVALID_ARGUMENT with TensorFlow's message when the inputs do not fit."""
        function = self.signature(signature)
        expected = sorted(function.structured_input_signature[1])
        if sorted(inputs) != expected:
            raise ServingError("INVALID_ARGUMENT", f"signature {signature} takes inputs {expected}, got {sorted(inputs)}")
        self.predictions += 1
        try:
            outputs = function(**{name: tf.constant(value) for name, value in inputs.items()})
        except tf.errors.OpError as error:
            raise ServingError("INVALID_ARGUMENT", error.message) from None
        return {name: value.numpy() for name, value in outputs.items()}


@functools.cache
def servable(version_dir: str, name: str) -> Servable:
    """The Servable of version_dir, loaded once per process and shared by every double serving it."""
    return Servable(version_dir, name)


class PredictionService(prediction_service_pb2_grpc.PredictionServiceServicer):
    """Predict and GetModelMetadata of one Servable."""

    def __init__(self, model: Servable):
        self.model = model

    def check_model(self, request, context) -> None:
        version = request.model_spec.version.value if request.model_spec.HasField("version") else None
        try:
            self.model.check_model(request.model_spec.name, version)
        except ServingError as error:
            context.abort(getattr(grpc.StatusCode, error.code), error.message)

    def Predict(self, request, context):
        self.check_model(request, context)
        try:
            outputs = self.model.predict(request.model_spec.signature_name or "serving_default",
                                         {name: tf.make_ndarray(proto) for name, proto in request.inputs.items()})
        except ServingError as error:
            context.abort(getattr(grpc.StatusCode, error.code), error.message)
        response = predict_pb2.PredictResponse(model_spec=request.model_spec)
        for name, value in outputs.items():
            response.outputs[name].CopyFrom(tf.make_tensor_proto(value))
        return response

    def GetModelMetadata(self, request, context):
        self.check_model(request, context)
        response = get_model_metadata_pb2.GetModelMetadataResponse(model_spec=request.model_spec)
        response.model_spec.version.value = self.model.version
        response.metadata["signature_def"].Pack(self.model.signature_defs)
        return response


@contextlib.contextmanager
def grpc_double(version_dir: str, model_name: str):
    """A gRPC server of the SavedModel at version_dir named model_name; yields "127.0.0.1:PORT"."""
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(
        PredictionService(servable(version_dir, model_name)), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        yield f"127.0.0.1:{port}"
    finally:
        server.stop(grace=None).wait()


class RestHandler(BaseHTTPRequestHandler):
    """GET /v1/models/NAME[/versions/N]/metadata and POST /v1/models/NAME[/versions/N]:predict of
    `self.server.model`; errors as {"error": message}."""
    PATH = re.compile(r"/v1/models/([^/:]+)(?:/versions/(\d+))?(/metadata|:predict)")

    def do_GET(self):
        self.answer("/metadata", self.metadata)

    def do_POST(self):
        self.answer(":predict", self.predict)

    def answer(self, method: str, handle) -> None:
        """Checks the path and the model, then sends handle()'s JSON (or the error)."""
        model = self.server.model
        match = self.PATH.fullmatch(self.path)
        try:
            if not match or match[3] != method:
                raise ServingError("NOT_FOUND", f"Malformed request: {self.command} {self.path}")
            model.check_model(match[1], None if match[2] is None else int(match[2]))
            status, body = 200, handle(model)
        except ServingError as error:
            status, body = HTTP_STATUS[error.code], {"error": error.message}
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def metadata(self, model: Servable) -> dict:
        signature_defs = json_format.MessageToDict(model.signature_defs, preserving_proto_field_name=True)
        return {"model_spec": {"name": model.name, "signature_name": "", "version": str(model.version)},
                "metadata": {"signature_def": signature_defs}}

    def predict(self, model: Servable) -> dict:
        """Columnar "inputs" converted to the signature's dtypes; a single output as a bare list."""
        request = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        if not isinstance(request.get("inputs"), dict):
            raise ServingError("INVALID_ARGUMENT", 'the double takes only the columnar format: {"inputs": {name: value}}')
        signature = request.get("signature_name", "serving_default")
        specs = model.signature(signature).structured_input_signature[1]
        inputs = {name: np.asarray(value, dtype=specs[name].dtype.as_numpy_dtype if name in specs else None)
                  for name, value in request["inputs"].items()}
        outputs = {name: value.tolist() for name, value in model.predict(signature, inputs).items()}
        return {"outputs": next(iter(outputs.values())) if len(outputs) == 1 else outputs}

    def log_message(self, *args) -> None:
        """Quiet: no line per request on stderr."""


@contextlib.contextmanager
def rest_double(version_dir: str, model_name: str):
    """A REST server of the SavedModel at version_dir named model_name; yields "http://127.0.0.1:PORT"."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), RestHandler)
    server.model = servable(version_dir, model_name)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
