"""The MNIST classifier that the tiny FCN starts from.

It follows the M2NIST article: conv 5x5x8 (valid) -> ReLU -> max-pool 2 -> conv 3x3x8
(valid) -> ReLU -> max-pool 2 -> dense 32 -> ReLU -> dense 10. On a 28x28 digit the
feature map that the first dense layer flattens is 8 x 5 x 5 (28 -> 24 -> 12 -> 10 -> 5),
which is why its convolutional twin has a 5x5 kernel.

The layout -- ``features``, a flatten, ``classifier`` -- is torchvision's (VGG, AlexNet),
so :func:`tinyfcn.convert.convolutionalize` converts this net and VGG16 alike.
"""

from __future__ import annotations

from torch import Tensor, nn

INPUT_SIZE = (28, 28)


class MnistClassifier(nn.Module):
    """conv5x5x8-pool-conv3x3x8-pool-dense32-dense10, torchvision-style."""

    def __init__(self, num_classes: int = 10, width: int = 8, hidden: int = 32) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, width, 5),  # conv1: 28 -> 24
            nn.ReLU(inplace=True),
            nn.MaxPool2d(2),  # pool1: 1/2
            nn.Conv2d(width, width, 3),  # conv2: 12 -> 10
            nn.ReLU(inplace=True),
            nn.MaxPool2d(2),  # pool2: 1/4
        )
        self.classifier = nn.Sequential(
            nn.Linear(width * 5 * 5, hidden),  # dense32: reads the whole 5x5 map
            nn.ReLU(inplace=True),
            nn.Linear(hidden, num_classes),  # dense10
        )

    def forward(self, x: Tensor) -> Tensor:
        if x.shape[-2:] != INPUT_SIZE:
            raise ValueError(
                f"MnistClassifier takes 28x28 digits, got {tuple(x.shape[-2:])}; "
                "convolutionalize it to run on larger images"
            )
        return self.classifier(self.features(x).flatten(1))
