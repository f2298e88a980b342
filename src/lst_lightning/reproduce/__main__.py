import sys

from lst_lightning.reproduce import main

sys.exit(main())
