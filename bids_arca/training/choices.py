"""The training switches' values, apart from the networks so that the command line can offer
them without loading PyTorch (about 3 s for a ``--help``)."""

ARCHITECTURES = ('arca', 'cacnn', 'ar')

# Loss forms (docs/model-spec.md, VAE regulariser): the paper's L = Dice + 0.1 L2 + 0.1 KL with
# a 128-d latent (Myronenko), and what the ARCNet code ran: 0.1 L2, KL weight 0, a 16-d latent.
VAE_FORMS = {'paper': (128, 0.1, 0.1), 'code': (16, 0.1, 0.0)}
