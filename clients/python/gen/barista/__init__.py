__all__ = ['ttypes', 'constants', 'Barista']
