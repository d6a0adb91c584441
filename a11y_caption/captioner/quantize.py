"""int8 dynamic weight quantization for the CPU, one layer at a time so two full copies never exist."""

from __future__ import annotations

import warnings

__all__ = ["quantize_int8"]


def quantize_int8(model) -> None:
    """Replace every nn.Linear in ``model`` (in place) by a dynamically quantized int8 Linear.

    The language-model head stays in float: it is tied to the embeddings in small checkpoints and
    quantizing it costs accuracy for little speed.
    """
    import torch
    from torch import nn

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.ao.quantization warns that it is deprecated
        from torch.ao.nn.quantized.dynamic import Linear as DynamicLinear

        head = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
        for parent in list(model.modules()):
            for child_name, child in list(parent.named_children()):
                if type(child) is nn.Linear and child is not head:
                    float_linear = child.float()
                    float_linear.qconfig = torch.ao.quantization.default_dynamic_qconfig
                    setattr(parent, child_name, DynamicLinear.from_float(float_linear))
                    del float_linear, child
