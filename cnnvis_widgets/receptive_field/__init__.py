"""Receptive fields and output shapes of every layer of a CNN.

The receptive field of a unit is the region of the input image that can
influence its value. For a chain of convolutions and poolings it follows the
recursive composition rule of Araujo, Norris and Sim, "Computing Receptive
Fields of Convolutional Neural Networks", Distill, 2019
(https://distill.pub/2019/computing-receptive-fields/). With ``size_in``,
``stride_in`` and ``start_in`` the field of the layer's input grid (in input
pixels) and a layer of kernel ``k``, stride ``s``, padding ``p`` and dilation
``d`` (effective kernel ``k_eff = d * (k - 1) + 1``)::

    size_out   = size_in + (k_eff - 1) * stride_in
    stride_out = stride_in * s
    start_out  = start_in - p * stride_in

Element-wise operations with several inputs (residual additions,
concatenation along channels, ...) take the union of their inputs' fields,
which makes branching networks (ResNet, GoogLeNet) exact, as in the
multi-path section of the same article.

:func:`trace_layers` runs one forward pass of a zero image to record each
layer's output shape, and propagates fields over the data-flow graph obtained
with :func:`torch.fx.symbolic_trace`. Leaf modules are mapped by name;
containers (``nn.Sequential``, residual blocks, inception blocks) get the
field of their output, found through ``node.meta["nn_module_stack"]``.

Conventions and limits:

* Fields are bounding boxes: a layer with a stride larger than its input's
  field size leaves gaps, which the box includes.
* ``None`` means that the units see the whole input (after flatten,
  ``Linear`` over space, global or non-divisible adaptive pooling, spatial
  means, squeeze-and-excitation gates, normalisations whose statistics span
  space such as ``GroupNorm``, ``InstanceNorm`` or ``LayerNorm`` over H and W)
  or that the field cannot be determined (unknown operations, transposed
  convolutions, interpolation). Unknown operations are never assumed to keep
  the field.
* Only 2-D spatial layers are modelled; tensors are expected in NCHW layout at
  the input, and permutes / reshapes that keep H and W are followed.
* When symbolic tracing fails (data-dependent control flow), fields are
  composed from the order in which modules run during the forward pass. This
  ignores functional operations and joins between branches, so it is only an
  approximation; such records carry ``receptive_field_exact=False``.

Modules of the package, each importing only those above it:

* :mod:`.field`: the :class:`ReceptiveField` and :class:`LayerTrace` value
  types, the composition rule and the union of two fields;
* :mod:`.tensor_fields`: the field values carried by tensors during
  propagation and walkers over nested values;
* :mod:`.rules`: how one operation (pointwise, sliding window, reshape,
  permute, reduction, indexing, ...) transforms a field;
* :mod:`.registry`: which rule applies to each leaf module, torch function and
  tensor method (the tables are filled when it is imported);
* :mod:`.fx_interpreter`: exact propagation over the :mod:`torch.fx` graph;
* :mod:`.sequential_fallback`: approximate fields in call order, from forward
  hooks;
* :mod:`.tracing`: :func:`trace_layers` and :func:`receptive_field_of`.
"""

from .field import LayerTrace, ReceptiveField
from .tracing import receptive_field_of, trace_layers

__all__ = [
    "ReceptiveField",
    "LayerTrace",
    "trace_layers",
    "receptive_field_of",
]
