// Style sheets the widgets need, inlined by js/build.mjs as <style> elements
// (fonts are dropped: Font Awesome icons are not bundled).
import "@lumino/widgets/style/index.css";
import "@jupyter-widgets/controls/css/widgets-base.css";
import "bqplot/css/bqplot.css";
