"""Differentiable primitives whose backward passes use only TFLM builtin ops.

Each primitive is a ``tf.custom_gradient`` function built by a factory that
knows, at trace time, which gradients are needed (input gradient, gradient of
each parameter). The forward pass keeps for the backward pass only what that
backward pass reads (e.g. a bool ReLU mask instead of the float
pre-activation; no input tensor when the layer's weights are frozen). TF's
built-in gradients of convolutions and activations lower to Flex ops
(``Conv2DBackpropFilter``, ``ReluGrad``...) that TFLM does not have.
"""
