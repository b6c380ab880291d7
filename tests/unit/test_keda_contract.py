"""The checked-in protobuf module speaks KEDA's externalscaler wire contract, field for field.

The table below is KEDA's ``externalscaler.proto`` (package ``externalscaler``): a renamed field or
message, a changed number or type, or a method that stopped streaming would break KEDA silently.
"""

from __future__ import annotations

import importlib
from typing import Any

from google.protobuf.descriptor import FieldDescriptor

generated: Any = importlib.import_module("tidegauge.keda.externalscaler_pb2")

STRING, BOOL, INT64, DOUBLE, MESSAGE = (
    FieldDescriptor.TYPE_STRING,
    FieldDescriptor.TYPE_BOOL,
    FieldDescriptor.TYPE_INT64,
    FieldDescriptor.TYPE_DOUBLE,
    FieldDescriptor.TYPE_MESSAGE,
)
KEDA_MESSAGES = {
    "ScaledObjectRef": [("name", 1, STRING), ("namespace", 2, STRING), ("scalerMetadata", 3, MESSAGE)],
    "IsActiveResponse": [("result", 1, BOOL)],
    "GetMetricSpecResponse": [("metricSpecs", 1, MESSAGE)],
    "MetricSpec": [("metricName", 1, STRING), ("targetSize", 2, INT64), ("targetSizeFloat", 3, DOUBLE)],
    "GetMetricsRequest": [("scaledObjectRef", 1, MESSAGE), ("metricName", 2, STRING)],
    "GetMetricsResponse": [("metricValues", 1, MESSAGE)],
    "MetricValue": [("metricName", 1, STRING), ("metricValue", 2, INT64), ("metricValueFloat", 3, DOUBLE)],
}
KEDA_METHODS = {
    "IsActive": ("ScaledObjectRef", "IsActiveResponse", False),
    "StreamIsActive": ("ScaledObjectRef", "IsActiveResponse", True),
    "GetMetricSpec": ("ScaledObjectRef", "GetMetricSpecResponse", False),
    "GetMetrics": ("GetMetricsRequest", "GetMetricsResponse", False),
}


def test_messages_have_keda_field_names_numbers_and_types() -> None:
    file = generated.DESCRIPTOR
    assert file.package == "externalscaler"
    for name, fields in KEDA_MESSAGES.items():
        message = file.message_types_by_name[name]
        assert [(f.name, f.number, f.type) for f in message.fields] == fields, name
    metadata = file.message_types_by_name["ScaledObjectRef"].fields_by_name["scalerMetadata"]
    assert metadata.message_type.GetOptions().map_entry  # map<string, string>


def test_service_has_keda_methods_with_their_streaming() -> None:
    service = generated.DESCRIPTOR.services_by_name["ExternalScaler"]
    assert service.full_name == "externalscaler.ExternalScaler"
    methods = {
        method.name: (method.input_type.name, method.output_type.name, method.server_streaming)
        for method in service.methods
    }
    assert methods == KEDA_METHODS
