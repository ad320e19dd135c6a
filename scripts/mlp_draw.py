"""Draw a fitted multilayer perceptron neuron by neuron, with its weights.

``mlp_graph(model)`` turns a fitted network into a networkx ``DiGraph`` (one
node per neuron, one edge per weight); ``mlp_draw(model, ...)`` draws it with
matplotlib and returns the Axes. Accepted models: a fitted ``MLPClassifier`` or
``MLPRegressor``, a fitted ``Pipeline`` ending in one of them, or a torch
``nn.Sequential`` of ``nn.Linear`` layers and activation modules.

Typical calls::

    mlp_draw(model=model, orientation="h", label_pos=2.3/7, add_labels=True)
    mlp_draw(model=model, orientation="h", label_pos=1.3/7)
    mlp_draw(model["mlp"], orientation="h", figsize=(16, 16), alpha=0.5, add_labels=False)

Nodes are keyed ``(layer, index)``: layer 0 holds the inputs, the last layer the
outputs, and ``index`` counts from 0 within the layer. Bias nodes are keyed
``(layer, "bias")`` and feed layer ``layer + 1``.
"""

from __future__ import annotations

import sys

import numpy as np
import networkx as nx

__all__ = ["mlp_graph", "mlp_draw", "network_layers", "POSITIVE_COLOR", "NEGATIVE_COLOR"]

POSITIVE_COLOR = "#0072B2"  # Okabe-Ito blue: readable for color-blind readers
NEGATIVE_COLOR = "#D55E00"  # Okabe-Ito vermilion
NODE_COLORS = {"input": "#F0E442", "hidden": "#FFFFFF", "output": "#56B4E9",
               "bias": "#DDDDDD", "more": "#EEEEEE"}

_TORCH_ACTIVATIONS = {"ReLU", "Sigmoid", "Tanh", "Identity", "LeakyReLU", "ELU", "GELU",
                      "SiLU", "Softmax", "LogSoftmax", "Softplus", "Dropout", "Hardtanh",
                      "PReLU", "SELU", "Mish"}


# --------------------------------------------------------------------------
# Reading weights out of a model
# --------------------------------------------------------------------------

def network_layers(model):
    """Weights, biases and node names of a fitted network.

    Returns ``(weights, biases, names)``: ``weights[k]`` has shape
    ``(n_in, n_out)`` (scikit-learn's ``coefs_`` convention), ``biases[k]`` shape
    ``(n_out,)``, and ``names[l]`` lists the display names of layer ``l``.
    Raises a ``TypeError`` or ``ValueError`` that says how to fix bad input.
    """
    if _is_torch_module(model):
        return _torch_layers(model)
    return _sklearn_layers(model)


def _is_torch_module(model):
    # a torch model exists only once torch is imported: a scikit-learn chapter that draws
    # its network does not pay for importing torch (over 1 s in a fresh kernel)
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(model, torch.nn.Module)


def _sklearn_layers(model):
    from sklearn.neural_network import MLPClassifier, MLPRegressor
    from sklearn.pipeline import Pipeline

    features = None
    if isinstance(model, Pipeline):
        features = getattr(model, "feature_names_in_", None)
        model = model.steps[-1][1]
    if not isinstance(model, (MLPClassifier, MLPRegressor)):
        raise TypeError(
            f"mlp_draw cannot draw a {type(model).__name__}: pass a fitted MLPClassifier or "
            "MLPRegressor, a Pipeline ending in one, or a torch nn.Sequential of Linear layers.")
    if not hasattr(model, "coefs_"):
        raise ValueError(
            f"This {type(model).__name__} is not fitted yet: call fit(X, y) on it first, "
            "then draw it.")
    weights = [np.asarray(w) for w in model.coefs_]
    biases = [np.asarray(b) for b in model.intercepts_]
    if features is None:
        features = getattr(model, "feature_names_in_", None)
    inputs = [str(f) for f in features] if features is not None else None
    outputs = None
    classes = getattr(model, "classes_", None)
    if classes is not None and len(classes) == weights[-1].shape[1]:
        outputs = [str(c) for c in classes]
    return weights, biases, _names(weights, inputs, outputs)


def _torch_layers(model):
    import torch

    if not isinstance(model, torch.nn.Sequential):
        raise TypeError(
            f"mlp_draw draws a torch nn.Sequential, not a {type(model).__name__}: wrap the "
            "Linear layers and activations in nn.Sequential(...).")
    weights, biases = [], []
    for name, layer in model.named_children():
        kind = type(layer).__name__
        if isinstance(layer, torch.nn.Linear):
            w = layer.weight.detach().cpu().numpy().T  # torch stores (out, in)
            if weights and weights[-1].shape[1] != w.shape[0]:
                raise ValueError(
                    f"Linear layer '{name}' takes {w.shape[0]} inputs but the layer before it "
                    f"has {weights[-1].shape[1]} outputs: make in_features match the previous "
                    "out_features.")
            weights.append(w)
            b = layer.bias
            biases.append(np.zeros(w.shape[1]) if b is None else b.detach().cpu().numpy())
        elif kind not in _TORCH_ACTIVATIONS:
            raise TypeError(
                f"mlp_draw cannot draw layer '{name}' ({kind}): only nn.Linear layers and "
                "activation modules (ReLU, Sigmoid, Tanh, ...) form a multilayer perceptron.")
    if not weights:
        raise ValueError("This nn.Sequential has no nn.Linear layer: there are no weights to draw.")
    return weights, biases, _names(weights, None, None)


def _names(weights, inputs, outputs):
    sizes = [weights[0].shape[0]] + [w.shape[1] for w in weights]
    names = [inputs or [f"x{i + 1}" for i in range(sizes[0])]]
    for layer, size in enumerate(sizes[1:-1], start=1):
        names.append([f"h{layer}_{i + 1}" for i in range(size)])
    if outputs is None:
        outputs = ["ŷ"] if sizes[-1] == 1 else [f"ŷ{i + 1}" for i in range(sizes[-1])]
    names.append(outputs)
    return names


# --------------------------------------------------------------------------
# The graph
# --------------------------------------------------------------------------

def mlp_graph(model, show_bias=False, input_names=None, output_names=None):
    """A networkx ``DiGraph`` of a fitted network: a node per neuron, an edge per weight.

    Node attributes: ``layer`` (0 = inputs), ``index``, ``label`` and ``kind``
    (input, hidden, output or bias). Edge attribute ``weight``: the fitted value.
    With ``show_bias=True`` each layer gets a bias node whose edges carry the
    intercepts of the next layer. ``input_names`` and ``output_names`` replace
    the default labels of the input and output nodes (one name per node).
    """
    weights, biases, names = network_layers(model)
    for layer, given, what in ((0, input_names, "input_names"),
                               (len(names) - 1, output_names, "output_names")):
        if given is not None:
            given = [str(name) for name in given]
            if len(given) != len(names[layer]):
                raise ValueError(f"{what} has {len(given)} names but the network has "
                                 f"{len(names[layer])} {what.split('_')[0]} nodes: give one "
                                 "name per node.")
            names[layer] = given
    graph = nx.DiGraph()
    last = len(weights)
    for layer, layer_names in enumerate(names):
        kind = "input" if layer == 0 else "output" if layer == last else "hidden"
        for index, label in enumerate(layer_names):
            graph.add_node((layer, index), layer=layer, index=index, label=label, kind=kind)
    for layer, w in enumerate(weights):
        graph.add_edges_from(((layer, i), (layer + 1, j), {"weight": float(value)})
                             for (i, j), value in np.ndenumerate(w))
        if show_bias:
            graph.add_node((layer, "bias"), layer=layer, index="bias", label="1", kind="bias")
            graph.add_edges_from(((layer, "bias"), (layer + 1, j), {"weight": float(b)})
                                 for j, b in enumerate(biases[layer]))
    return graph


# --------------------------------------------------------------------------
# Drawing
# --------------------------------------------------------------------------

def mlp_draw(model, orientation="h", figsize=None, label_pos=0.5, add_labels=False,
             label_size=8, alpha=1.0, ax=None, show_bias=False, max_neurons=None,
             highlight=None, highlight_color="#009E73", node_size=None, legend=True,
             title=None, input_names=None, output_names=None, label_layers=None):
    """Draw a fitted network: neurons as circles, weights as colored edges.

    Parameters
    ----------
    model : fitted MLPClassifier / MLPRegressor, Pipeline ending in one, or torch nn.Sequential
    orientation : "h" (inputs on the left) or "v" (inputs at the top)
    figsize : size of the new figure (ignored when ``ax`` is given)
    label_pos : where the weight labels sit along each edge, networkx's convention:
        0 at the head (target neuron), 0.5 in the middle, 1 at the tail (source)
    add_labels : print each weight on its edge
    label_size : font size of the weight labels
    alpha : opacity of the edges
    ax : Axes to draw in; no new figure is created when it is given
    show_bias : also draw bias nodes and their edges
    max_neurons : show at most this many neurons per layer, plus one "+N" node
    highlight : edges ``[(u, v), ...]`` or a node path ``[n0, n1, ...]`` drawn in
        ``highlight_color`` over the rest; or a dict ``{color: edges_or_path}``,
        drawn in order. Nodes are ``(layer, index)`` pairs.
    legend : add a legend explaining edge color and width
    title : Axes title
    input_names, output_names : names for the input and output nodes, one per
        node (default: the model's feature names and classes, else x1, x2, ...
        and ŷ); names longer than three characters are written beside the node
    label_layers : with ``add_labels``, label only the weights of these layers,
        counted from 1 as in W^(l): layer 1 holds the weights from the inputs to
        the first hidden layer, layer L those into the output layer

    Edge color gives the sign (blue positive, vermilion negative) and width
    the size |weight|. Returns the matplotlib Axes; never calls ``plt.show()``.
    """
    import matplotlib.pyplot as plt
    from matplotlib.collections import LineCollection
    from matplotlib.lines import Line2D

    if orientation not in ("h", "v"):
        raise ValueError(f'orientation must be "h" (left to right) or "v" (top to bottom), '
                         f"not {orientation!r}.")
    if not 0 <= label_pos <= 1:
        raise ValueError(f"label_pos must lie in [0, 1] (0 = target end, 1 = source end), "
                         f"not {label_pos}.")
    if max_neurons is not None and max_neurons < 1:
        raise ValueError(f"max_neurons must be a positive whole number, not {max_neurons}.")

    graph = mlp_graph(model, show_bias=show_bias, input_names=input_names,
                      output_names=output_names)
    shown = _shown_nodes(graph, max_neurons)
    pos = _layout(graph, shown, orientation)
    edges = [(u, v, d["weight"]) for u, v, d in graph.edges(data=True) if u in pos and v in pos]

    n_layers = 1 + max(d["layer"] for _, d in graph.nodes(data=True))
    if label_layers is not None:
        label_layers = set(label_layers)
        wrong = sorted(label_layers - set(range(1, n_layers)))
        if wrong:
            raise ValueError(f"label_layers {wrong} do not exist: this network's weight layers "
                             f"are numbered 1 to {n_layers - 1} (1 = from the inputs).")
    widest = max(len([n for n in pos if n[0] == layer]) for layer in range(n_layers))
    if ax is None:
        if figsize is None:
            long_side, short_side = max(5, 2.2 * n_layers), min(max(3, 0.55 * widest), 16)
            figsize = (long_side, short_side) if orientation == "h" else (short_side, long_side)
        _, ax = plt.subplots(figsize=figsize)

    weights = np.array([w for _, _, w in edges])
    biggest = float(np.abs(weights).max()) if len(weights) and np.abs(weights).max() > 0 else 1.0
    segments = np.array([[pos[u], pos[v]] for u, v, _ in edges]).reshape(-1, 2, 2)
    colors = np.where(weights[:, None] >= 0, _rgba(POSITIVE_COLOR), _rgba(NEGATIVE_COLOR)) \
        if len(weights) else np.empty((0, 4))
    widths = 0.4 + 3.6 * np.abs(weights) / biggest
    ax.add_collection(LineCollection(segments, colors=colors, linewidths=widths, alpha=alpha,
                                     zorder=1))

    for color, chosen in _highlights(highlight, highlight_color, graph, pos):
        segs = np.array([[pos[u], pos[v]] for u, v in chosen]).reshape(-1, 2, 2)
        ax.add_collection(LineCollection(segs, colors=color, linewidths=3.5, zorder=2))

    _draw_nodes(ax, graph, pos, shown, node_size or _node_size(ax, widest, orientation),
                horizontal=orientation == "h")
    ax.autoscale_view()
    ax.margins(0.08)
    ax.set_axis_off()
    if add_labels:
        labelled = [e for e in edges if label_layers is None or e[1][0] in label_layers]
        _draw_weight_labels(ax, labelled, pos, label_pos, label_size)
    if legend:
        handles = [Line2D([], [], color=POSITIVE_COLOR, lw=2.5, label="positive weight"),
                   Line2D([], [], color=NEGATIVE_COLOR, lw=2.5, label="negative weight"),
                   Line2D([], [], color="grey", lw=0.8, label="thin: small |weight|")]
        ax.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, 0.0), ncol=3,
                  fontsize=8, frameon=False)
    if title:
        ax.set_title(title)
    return ax


def _rgba(color):
    from matplotlib.colors import to_rgba

    return np.array(to_rgba(color))


def _shown_nodes(graph, max_neurons):
    """Which nodes to draw, and the '+N' stand-ins for the rest: {layer: (nodes, hidden)}."""
    layers = {}
    for node, data in graph.nodes(data=True):
        if data["kind"] != "bias":
            layers.setdefault(data["layer"], []).append(node)
    shown = {}
    for layer, nodes in layers.items():
        nodes.sort(key=lambda n: n[1])
        if max_neurons is not None and len(nodes) > max_neurons:
            shown[layer] = (nodes[:max_neurons], len(nodes) - max_neurons)
        else:
            shown[layer] = (nodes, 0)
    return shown


def _layout(graph, shown, orientation):
    """Positions: layers along one axis, each layer centered on the other."""
    pos = {}
    for layer, (nodes, hidden) in shown.items():
        keys = list(nodes) + ([(layer, "more")] if hidden else [])
        if graph.has_node((layer, "bias")):
            keys = [(layer, "bias")] + keys
        for k, key in enumerate(keys):
            across = (len(keys) - 1) / 2 - k
            pos[key] = (layer, across) if orientation == "h" else (-across, -layer)
    return pos


def _node_size(ax, widest, orientation):
    """Marker area (points²) so that the widest layer's circles do not overlap."""
    box = ax.get_window_extent()
    across = (box.height if orientation == "h" else box.width) * 72 / ax.figure.dpi
    diameter = min(30.0, 0.8 * across / (widest + 0.5))
    return diameter ** 2


def _draw_nodes(ax, graph, pos, shown, size, horizontal=True):
    for node, (x, y) in pos.items():
        if node[1] == "more":
            kind, label = "more", f"+{shown[node[0]][1]}"
        else:
            kind, label = graph.nodes[node]["kind"], graph.nodes[node]["label"]
        ax.scatter([x], [y], s=size, c=NODE_COLORS[kind], edgecolors="black", linewidths=1,
                   zorder=3, marker="s" if kind == "bias" else "o")
        if size >= 200:  # too small a circle for a readable name
            fontsize = 8 if size >= 500 else 6
            if len(label) > 3 and kind in ("input", "output"):   # a long name goes beside
                gap = np.sqrt(size) / 2 + 3
                before = kind == "input"
                offset = ((-gap if before else gap, 0) if horizontal else
                          (0, gap if before else -gap))
                ha = ("right" if before else "left") if horizontal else "center"
                va = "center" if horizontal else ("bottom" if before else "top")
                ax.annotate(label, (x, y), xytext=offset, textcoords="offset points",
                            ha=ha, va=va, fontsize=fontsize, zorder=4)
            else:
                ax.annotate(label, (x, y), ha="center", va="center", fontsize=fontsize,
                            zorder=4)


def _draw_weight_labels(ax, edges, pos, label_pos, label_size):
    for u, v, w in edges:
        (x1, y1), (x2, y2) = pos[u], pos[v]
        x, y = x1 * label_pos + x2 * (1 - label_pos), y1 * label_pos + y2 * (1 - label_pos)
        angle = np.degrees(np.arctan2(y2 - y1, x2 - x1))
        angle = ax.transData.transform_angles(np.array([angle]), np.array([[x, y]]))[0]
        if angle > 90 or angle < -90:
            angle -= 180 * np.sign(angle)
        ax.text(x, y, f"{w:.2f}", fontsize=label_size, ha="center", va="center",
                rotation=angle, rotation_mode="anchor", zorder=5,
                bbox=dict(boxstyle="round,pad=0.1", fc="white", ec="none", alpha=0.8))


def _highlights(highlight, default_color, graph, pos):
    """Normalize ``highlight`` to a list of (color, [edges]) and check the edges exist."""
    if highlight is None:
        return []
    groups = highlight.items() if isinstance(highlight, dict) else [(default_color, highlight)]
    out = []
    for color, spec in groups:
        spec = list(spec)
        is_edges = bool(spec) and all(isinstance(e, tuple) and len(e) == 2
                                      and all(isinstance(n, tuple) for n in e) for e in spec)
        edges = spec if is_edges else list(zip(spec[:-1], spec[1:]))
        for u, v in edges:
            if not graph.has_edge(u, v):
                raise ValueError(f"highlight names the edge {u} -> {v}, which is not in this "
                                 "network: nodes are (layer, index) pairs counted from 0.")
            if u not in pos or v not in pos:
                raise ValueError(f"highlight names the edge {u} -> {v}, hidden by max_neurons: "
                                 "raise max_neurons to show it.")
        out.append((color, edges))
    return out
