"""Quickstart (replaced by the full demo): a GroupLasso-regularized MLP on digits."""

import keras
import numpy as np

import kreg


def main():
    from sklearn.datasets import load_digits

    x, y = load_digits(return_X_y=True)
    x = (x / 16.0).astype("float32")
    reg = kreg.GroupLasso(1e-3, groups="units")
    model = keras.Sequential(
        [keras.Input((64,)), keras.layers.Dense(64, activation="relu", kernel_regularizer=reg),
         keras.layers.Dense(10)]
    )
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"])
    model.fit(x, y, epochs=5, batch_size=64, verbose=2)
    norms = np.asarray(reg.group_norms(model.layers[0].kernel))
    print(f"units with norm < 1e-3: {int((norms < 1e-3).sum())} of {norms.size}")


if __name__ == "__main__":
    main()
