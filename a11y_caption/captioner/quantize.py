"""int8 dynamic weight quantization for the CPU, one layer at a time.

Each nn.Linear becomes an int8 Linear (fbgemm kernels quantize activations on the fly). The model
is loaded in its shipped precision (bf16 for Qwen2-VL) rather than fp32, and every layer is
converted and its float weights released before the next, so only one layer ever exists twice.
"""

from __future__ import annotations

import warnings

__all__ = ["quantize_int8"]


def quantize_int8(model) -> None:
    """Replace every nn.Linear in ``model`` (in place) by a dynamically quantized int8 Linear.

    The language-model head stays as it is: it is tied to the embeddings in small checkpoints, so
    quantizing it would add a second copy of the largest matrix.
    """
    import torch
    from torch import nn

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.ao.quantization warns that it is deprecated
        from torch.ao.nn.quantized.dynamic import Linear as DynamicLinear

        class Int8Linear(nn.Module):
            """An int8 dynamic Linear inside a model whose other layers may be bf16."""

            def __init__(self, linear: nn.Linear):
                super().__init__()
                self.in_features, self.out_features = linear.in_features, linear.out_features
                float_linear = linear.float()
                float_linear.qconfig = torch.ao.quantization.default_dynamic_qconfig
                self.int8 = DynamicLinear.from_float(float_linear)

            def forward(self, x):
                return self.int8(x.float()).to(x.dtype)

        head = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
        for parent in list(model.modules()):
            for child_name, child in list(parent.named_children()):
                if type(child) is nn.Linear and child is not head:
                    setattr(parent, child_name, Int8Linear(child))
                    del child
