"""Tests of the chapter demo modules (lessonlib/demos/)."""
