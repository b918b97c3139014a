r"""Optimizers as optax-compatible gradient transformations, built from small transforms.

An optimizer is a pair of pure functions (optax's ``GradientTransformation``)::

    state = opt.init(params)
    updates, state = opt.update(grads, state, params)   # the updates already carry the minus sign
    params = apply_updates(params, updates)             # params + updates

Every optimizer below is a ``chain`` of the small transforms of ``lessonlib.transforms``, each doing
one thing, exactly as optax's ``alias.py`` builds them. Reading the chain is reading the algorithm::

    sgd(lr, momentum) = chain(trace(momentum), scale_by_learning_rate(lr))
    adam(lr)          = chain(scale_by_adam(), scale_by_learning_rate(lr))
    adam + L2 in loss = chain(add_decayed_weights(wd), scale_by_adam(), scale_by_learning_rate(lr))
    adamw(lr, wd)     = chain(scale_by_adam(), add_decayed_weights(wd), scale_by_learning_rate(lr))

The last two lines differ only in *where* ``wd * params`` enters: before Adam's per-coordinate
rescaling (so it gets rescaled too: that is an L2 penalty in the loss) or after it (decoupled weight
decay, Loshchilov & Hutter 2019). The transforms are re-exported here: ``optim.chain``,
``optim.clip``, ``optim.clip_by_global_norm``, ``optim.apply_updates``, ... all work.

Freezing layers is a transform too: ``multi_transform({"frozen": set_to_zero(), "trainable":
sgd(lr)}, labels)`` gives every labelled part of the parameters its own optimizer, and
``masked(inner, mask)`` applies ``inner`` to part of them (passing the rest through unchanged).

Hyperparameters may be Python numbers, traced JAX scalars (build the optimizer inside ``jit`` from
traced values and changing them never recompiles) or, for ``learning_rate``, a schedule
``step -> value``. Arguments are checked with ``lessonlib._checks`` when the optimizer is built
(traced values are skipped).

Any call this module accepts means the same thing as the optax call of the same name; arguments
that optax has and this module leaves out (``mu_dtype``, ``accumulator_dtype``, ...) raise
``TypeError`` instead of being silently reinterpreted.
"""

from lessonlib.adaptive import (  # noqa: F401  (re-exported: optim.scale_by_adam, ...)
    ScaleByAdamState,
    ScaleByRmsState,
    ScaleByRssState,
    ScaleByRStdDevState,
    scale_by_adam,
    scale_by_adamax,
    scale_by_rms,
    scale_by_rss,
    scale_by_stddev,
)
from lessonlib.transforms import (  # noqa: F401  (re-exported: optim.chain, optim.clip, ...)
    EmptyState,
    GradientTransformation,
    MaskedNode,
    MaskedState,
    MultiTransformState,
    ScaleByScheduleState,
    ScheduledTraceState,
    TraceState,
    add_decayed_weights,
    apply_updates,
    chain,
    clip,
    clip_by_global_norm,
    global_norm,
    identity,
    masked,
    multi_transform,
    scale_by_learning_rate,
    set_to_zero,
    switch,
    trace,
)


def sgd(learning_rate, momentum=None, nesterov: bool = False) -> GradientTransformation:
    r"""Stochastic gradient descent, with optional (Nesterov) momentum.

    .. math::
        m_t = g_t + \mu\, m_{t-1}, \qquad
        \theta_t = \theta_{t-1} - \eta\, m_t
        \quad\text{or, with Nesterov,}\quad
        \theta_t = \theta_{t-1} - \eta\, (g_t + \mu\, m_t).

    ``momentum=None`` is plain gradient descent :math:`\theta_t = \theta_{t-1} - \eta g_t`.
    ``learning_rate`` and ``momentum`` may each be a number or a schedule ``count -> value``
    (count 0, 1, 2, ... per update): 1cycle cycles both (``schedules.one_cycle`` and
    ``schedules.one_cycle_momentum``).

    References: Polyak 1964 (heavy ball); Nesterov 1983; Sutskever et al. 2013 (momentum and
    Nesterov's look-ahead in deep learning).

    Where frameworks disagree:
        * optax and PyTorch put the learning rate *outside* the buffer (:math:`m = \mu m + g`,
          :math:`\theta -= \eta m`); Sutskever et al. and Keras/Géron put it inside
          (:math:`v = \mu v - \eta g`, :math:`\theta += v`). Same path for a constant
          :math:`\eta`; with a schedule the first form rescales the whole velocity at once.
        * PyTorch's ``dampening`` (multiply :math:`g` by :math:`1-\tau`) does not exist here.
        * Nesterov: optax and PyTorch use the same rewrite (Bengio et al. 2013) of Sutskever's
          look-ahead form, which evaluates the gradient at :math:`\theta + \mu v`; the two give the
          same iterates up to the change of variables :math:`\theta' = \theta + \mu v`.

    >>> import jax, jax.numpy as jnp
    >>> opt = sgd(0.1, momentum=0.9)
    >>> params = jnp.array([1.0, 2.0])
    >>> state = opt.init(params)
    >>> for _ in range(3):
    ...     grads = jax.grad(lambda p: jnp.sum(p**2))(params)
    ...     updates, state = opt.update(grads, state, params)
    ...     params = apply_updates(params, updates)
    >>> [round(float(x), 4) for x in params]
    [0.062, 0.124]
    """
    if momentum is None:
        return chain(identity(), scale_by_learning_rate(learning_rate))
    return chain(trace(momentum, nesterov), scale_by_learning_rate(learning_rate))


def adagrad(learning_rate, initial_accumulator_value=0.1, eps=1e-7) -> GradientTransformation:
    r"""AdaGrad (Duchi, Hazan & Singer 2011): a per-coordinate step that only ever shrinks.

    .. math::
        G_t = G_{t-1} + g_t^2, \qquad
        \theta_t = \theta_{t-1} - \eta\,\frac{g_t}{\sqrt{G_t + \epsilon}}

    :math:`G_t` only grows, so steep coordinates slow down first, and eventually every coordinate
    stops: fine for convex problems, too early for deep networks.

    Where frameworks disagree: the initial accumulator :math:`G_0` is 0.1 in optax, Keras and TF1
    but 0 in PyTorch; ``eps`` is inside the square root here and in Keras 3 (both 1e-7:
    ``lr * g / sqrt(accumulator + epsilon)`` in ``keras/src/optimizers/adagrad.py``), outside in
    PyTorch (1e-10) and in older tf.keras releases. With the defaults this function is Keras 3's
    ``Adagrad``.

    >>> import jax.numpy as jnp
    >>> opt = adagrad(1.0)
    >>> updates, _ = opt.update(jnp.array([2.0]), opt.init(jnp.zeros(1)))
    >>> updates  # -2 / sqrt(0.1 + 4)
    Array([-0.9877296], dtype=float32)
    """
    return chain(
        scale_by_rss(initial_accumulator_value, eps),
        scale_by_learning_rate(learning_rate),
    )


def rmsprop(
    learning_rate,
    decay=0.9,
    eps=1e-8,
    initial_scale=0.0,
    eps_in_sqrt: bool = True,
    centered: bool = False,
    momentum=None,
    nesterov: bool = False,
) -> GradientTransformation:
    r"""RMSProp (Hinton, Coursera lecture 6e, 2012): AdaGrad with a leaky sum.

    .. math::
        v_t = \rho\, v_{t-1} + (1-\rho)\, g_t^2, \qquad
        \theta_t = \theta_{t-1} - \eta\,\frac{g_t}{\sqrt{v_t + \epsilon}}

    ``decay`` is :math:`\rho`. ``centered=True`` divides by a variance estimate instead (Graves
    2013); ``momentum`` adds a momentum buffer after the learning rate, as optax does.

    Where frameworks disagree: Keras calls :math:`\rho` ``rho`` (default 0.9), PyTorch calls it
    ``alpha`` (default 0.99!); optax and Keras 3 put ``eps`` inside the square root
    (``eps_in_sqrt=True`` here; Keras 3 computes ``lr * g / sqrt(velocity + epsilon)`` in
    ``keras/src/optimizers/rmsprop.py``, default ``epsilon=1e-7``), PyTorch and older tf.keras
    releases outside (``eps_in_sqrt=False``); TF1 started :math:`v_0` at 1, the others at 0
    (``initial_scale``). Keras 3's ``RMSprop(lr, rho=0.9)`` is ``rmsprop(lr, 0.9, eps=1e-7)``.

    >>> import jax.numpy as jnp
    >>> opt = rmsprop(0.01)
    >>> updates, _ = opt.update(jnp.array([2.0]), opt.init(jnp.zeros(1)))
    >>> [round(float(x), 5) for x in updates]  # -0.01 * 2 / sqrt(0.1 * 4) = sqrt(10) * SGD's
    [-0.03162]
    """
    if centered:
        scaling = scale_by_stddev(decay, eps, initial_scale, eps_in_sqrt)
    else:
        scaling = scale_by_rms(decay, eps, initial_scale, eps_in_sqrt)
    if momentum is None:
        return chain(scaling, scale_by_learning_rate(learning_rate))
    return chain(scaling, scale_by_learning_rate(learning_rate), trace(momentum, nesterov))


def adam(
    learning_rate, b1=0.9, b2=0.999, eps=1e-8, eps_root=0.0, *, nesterov: bool = False
) -> GradientTransformation:
    r"""Adam (Kingma & Ba 2015, Algorithm 1): momentum on the gradient, RMSProp on its square,
    both bias-corrected.

    .. math::
        m_t = \beta_1 m_{t-1} + (1-\beta_1) g_t, \qquad
        v_t = \beta_2 v_{t-1} + (1-\beta_2) g_t^2,

        \hat m_t = \frac{m_t}{1-\beta_1^t}, \qquad \hat v_t = \frac{v_t}{1-\beta_2^t}, \qquad
        \theta_t = \theta_{t-1} - \eta\,\frac{\hat m_t}{\sqrt{\hat v_t} + \epsilon}.

    At step 1, :math:`\hat m_1 = g_1` and :math:`\hat v_1 = g_1^2`, so every coordinate moves by
    about :math:`\eta`, whatever the size of its gradient.

    Where frameworks disagree: optax and PyTorch follow Algorithm 1 (``eps`` added to
    :math:`\sqrt{\hat v_t}`). TensorFlow/Keras use the form just before Section 2.1 of the paper:
    :math:`\eta_t = \eta\sqrt{1-\beta_2^t}/(1-\beta_1^t)` and
    :math:`\theta -= \eta_t m_t / (\sqrt{v_t} + \hat\epsilon)`, i.e. their "epsilon hat" is added
    to the *uncorrected* root, equivalent to ``eps = eps_hat / sqrt(1 - b2**t)`` here; Keras'
    default is 1e-7. ``eps_root`` adds a constant inside the square root instead.

    >>> import jax.numpy as jnp
    >>> opt = adam(0.1)
    >>> updates, _ = opt.update(jnp.array([1e-3, 1e3]), opt.init(jnp.zeros(2)))
    >>> [round(float(x), 4) for x in updates]  # gradients 1e6 apart, both move by ~lr
    [-0.1, -0.1]
    """
    return chain(
        scale_by_adam(b1, b2, eps, eps_root, nesterov=nesterov),
        scale_by_learning_rate(learning_rate),
    )


def nadam(learning_rate, b1=0.9, b2=0.999, eps=1e-8, eps_root=0.0) -> GradientTransformation:
    r"""Nadam (Dozat 2016): Adam with Nesterov's look-ahead on the first moment.

    .. math::
        \hat m_t = \frac{\beta_1 m_t}{1-\beta_1^{t+1}} + \frac{(1-\beta_1)\, g_t}{1-\beta_1^t},
        \qquad \theta_t = \theta_{t-1} - \eta\,\frac{\hat m_t}{\sqrt{\hat v_t} + \epsilon}

    with :math:`m_t, v_t, \hat v_t` as in :func:`adam`. Same as ``adam(..., nesterov=True)``.

    Where frameworks disagree: Dozat's paper, Keras and PyTorch also warm up :math:`\beta_1`
    with a schedule. Keras 3 uses :math:`\mu_t = \beta_1(1 - 0.5\cdot 0.96^{t})` (0.96 is
    typed into ``keras/src/optimizers/nadam.py``; :math:`\mu_t` is within 1% of
    :math:`\beta_1` after about 100 steps); PyTorch's ``NAdam`` uses
    :math:`\mu_t = \beta_1(1 - 0.5\cdot 0.96^{t\psi})` with ``momentum_decay``
    :math:`\psi = 4\cdot 10^{-3}`, a warm-up 250 times slower. optax and this module use a
    constant :math:`\beta_1`. Dozat's Algorithm 2 also multiplies
    :math:`\hat v_t` by :math:`\beta_2`, which implementations omit.

    >>> import jax.numpy as jnp
    >>> opt = nadam(0.1)
    >>> updates, _ = opt.update(jnp.array([2.0]), opt.init(jnp.zeros(1)))
    >>> [round(float(x), 4) for x in updates]  # 0.1 * (0.9 * 0.1 / 0.19 + 1), Adam: 0.1
    [-0.1474]
    """
    return adam(learning_rate, b1, b2, eps, eps_root, nesterov=True)


def adamax(learning_rate, b1=0.9, b2=0.999, eps=1e-8) -> GradientTransformation:
    r"""AdaMax (Kingma & Ba 2015, Algorithm 2): Adam with the :math:`L^\infty` norm.

    .. math::
        m_t = \beta_1 m_{t-1} + (1-\beta_1) g_t, \qquad
        u_t = \max(\beta_2 u_{t-1}, |g_t| + \epsilon), \qquad
        \theta_t = \theta_{t-1} - \eta\,\frac{m_t}{(1-\beta_1^t)\, u_t}

    Where frameworks disagree: the paper has no ``eps``; optax and PyTorch add it inside the max,
    Keras adds it to the denominator, :math:`\hat m_t / (u_t + \epsilon)`.

    >>> import jax.numpy as jnp
    >>> opt = adamax(0.1)
    >>> updates, _ = opt.update(jnp.array([2.0]), opt.init(jnp.zeros(1)))
    >>> [round(float(x), 4) for x in updates]
    [-0.1]
    """
    return chain(scale_by_adamax(b1, b2, eps), scale_by_learning_rate(learning_rate))


def adamw(
    learning_rate,
    b1=0.9,
    b2=0.999,
    eps=1e-8,
    eps_root=0.0,
    *,
    weight_decay=1e-4,
    mask=None,
    nesterov: bool = False,
) -> GradientTransformation:
    r"""AdamW (Loshchilov & Hutter 2019): Adam with *decoupled* weight decay.

    .. math::
        \theta_t = \theta_{t-1} - \eta\left(\frac{\hat m_t}{\sqrt{\hat v_t} + \epsilon}
        + \lambda\,\theta_{t-1}\right)

    with :math:`\hat m_t, \hat v_t` as in :func:`adam` computed from the gradient of the loss
    *without* a penalty. Compare the two chains::

        adam + L2: chain(add_decayed_weights(wd), scale_by_adam(), scale_by_learning_rate(lr))
        adamw:     chain(scale_by_adam(), add_decayed_weights(wd), scale_by_learning_rate(lr))

    In the first, :math:`\lambda\theta` is divided by :math:`\sqrt{\hat v}` like the gradient, so
    weights with large gradients are barely decayed; in AdamW every weight decays at the same rate
    :math:`\eta\lambda`. For plain SGD the two orders are the same thing.

    Where frameworks disagree: optax, PyTorch and Keras multiply :math:`\lambda` by the learning
    rate :math:`\eta`; the paper multiplies it only by the schedule multiplier. Defaults differ:
    ``weight_decay`` is 1e-4 in optax, 1e-2 in PyTorch, 0.004 in Keras.

    ``weight_decay`` and ``mask`` are keyword-only (optax has ``mu_dtype`` before them).
    ``mask`` selects which leaves decay (see :func:`add_decayed_weights`).

    >>> import jax.numpy as jnp
    >>> opt = adamw(0.1, weight_decay=0.5)
    >>> params = jnp.array([2.0])
    >>> updates, _ = opt.update(jnp.array([0.0]), opt.init(params), params)
    >>> updates  # zero gradient: only the decay -0.1 * 0.5 * 2
    Array([-0.1], dtype=float32)
    """
    return chain(
        scale_by_adam(b1, b2, eps, eps_root, nesterov=nesterov),
        add_decayed_weights(weight_decay, mask),
        scale_by_learning_rate(learning_rate),
    )
