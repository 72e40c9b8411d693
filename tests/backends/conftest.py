"""The built-in backends run the installable conformance contract as an outside author does."""
