"""Accuracy evaluation of trained models (mAP, top-k) and training of the shipped models.

``torch`` is only needed by the training modules (``torch_net``, ``yolo_loss``, ``train``),
never by evaluation.
"""
