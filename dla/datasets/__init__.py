"""Labelled image sets: the project's generated shapes data and readers for YOLO/COCO folders."""
