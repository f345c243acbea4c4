"""Image tasks: the embedded procedural ``shapes`` task and CIFAR-10/100 via torchvision.

Every task is an :class:`~esper_blueprints_cnn.tasks.base.ImageTask` over uint8 images, so
batching, augmentation and normalisation live in one place.
"""
