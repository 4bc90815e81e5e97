import Foundation
import Toolstack
exit(0)
