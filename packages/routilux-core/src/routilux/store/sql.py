"""
For job store implementers: the SQL base class and the decoding of job rows it shares.

A store on a SQL database subclasses :class:`BaseSqlJobStore` and writes only its dialect
(see the class); a store on anything else implements :class:`~routilux.store.JobStore`
and may still use :func:`job_record` and :func:`missing_job` for the same records and
errors. routilux-postgres's ``PostgresJobStore`` is built this way.

.. versionadded:: 0.10
"""

from __future__ import annotations

from routilux.persist._log import DEFAULT_KEEP, FOLD_RATIO, Tx
from routilux.persist._rows import job_record, missing_job
from routilux.persist._sql import BaseSqlJobStore


__all__ = ["DEFAULT_KEEP", "FOLD_RATIO", "BaseSqlJobStore", "Tx", "job_record", "missing_job"]
